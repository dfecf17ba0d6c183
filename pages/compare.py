import webui; c = webui.page_setup(); import streamlit as st; st.title("x")
