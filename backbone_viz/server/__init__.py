"""The class server: warm replicas of the web app, nginx in front, one command for a teacher."""
